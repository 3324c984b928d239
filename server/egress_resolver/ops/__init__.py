"""Operations: settings, the wiring of one process, the command line, workers,
file watching, metrics, logs and fleet invalidation."""
