"""Services decide: lifecycles and state machines of training jobs and endpoints."""
