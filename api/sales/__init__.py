"""Sales of new homes: pledges (认筹), a client's numbered place in a project's queue."""
