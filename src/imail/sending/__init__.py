"""The sending engine: sequence state, the scheduler, claiming with leases, SMTP out, outcomes."""
