"""What runs when something fires: scheduler, job runner, inbox worker, events, executors."""
