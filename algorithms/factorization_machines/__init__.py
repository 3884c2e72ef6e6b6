"""SageMaker's built-in Factorization Machines (`factorization-machines:1`) as a container-contract program."""
