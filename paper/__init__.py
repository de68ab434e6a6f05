"""mialaw.paper: the command line and the reproduction of the study (the top of the dependency graph)."""
