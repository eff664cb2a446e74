"""The training-loop path: session, schedules and checks, the device→host transfer, the verdict flow, the
worker and its render process."""
