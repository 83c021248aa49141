"""The classical process: app API, processes, scheduler, memory, interpreter."""
