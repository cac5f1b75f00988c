"""What every stage stands on: settings, errors, storage, auth, limits, the runtime and start-up."""
