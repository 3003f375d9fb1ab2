"""Run level: configuration, archive discovery, the plan of a window, the cursor, the gate."""
