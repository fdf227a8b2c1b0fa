"""alignbot: the application layer (config, clock, domain services, builders, jobs, CLI, shell)."""
