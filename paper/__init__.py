"""mialaw.paper: the command line and the reproduction of the study (top of the dependencies)."""
