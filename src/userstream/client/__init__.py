"""The resilient user-data-stream client (issue 3). Import public names from `userstream`."""
