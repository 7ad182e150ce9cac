"""Background work on TaskIQ: brokers per queue, the scheduler and the task functions."""
