"""Run handles: a suite run in a worker's background, read and cancelled by id from any worker.

`start_run` answers at once with a run id; `get_run` reads the run's progress, or its results once
it finished; `cancel_run` stops it. A run lives in the store (`store.RunStore`), so every worker
sharing a Redis store answers for it, and its results outlive the worker that ran it.
`manager.RunManager` (one per `App`) runs them in the background and keeps each one's heartbeat;
what a run runs is a `manager.Job` the front end builds, so nothing here imports the evaluation.

Nothing is imported here: the store imports the models at start.
"""
