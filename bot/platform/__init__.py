"""The platform every feature stands on: configuration, clock, outbox, scheduler, server, services, the command table."""
