"""Pipeline steps: plain functions, wrapped as Prefect tasks where flows need them."""
