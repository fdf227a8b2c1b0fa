"""Lead handoff: routing, the handoff card and its clicks, the lifecycle, who is who."""
