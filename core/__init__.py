"""The core every layer shares: settings, surfaces, domain types, keys, events, errors, stores."""
