"""What tests share: waits on the system's state, process launchers and scrapers. Tests import from here,
never from another test module."""
