"""Pure values every layer shares: keys, row records, the clock, settings, scheduling, templates."""
