"""The HTTP shell: dependencies, middleware and one router module per resource."""
