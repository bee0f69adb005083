"""Development tooling, never imported by the product: local ganache chains (the tests' short-lived
node and the persistent ``govshare devnet``), the sample consortium and its public test keys, two
sample department APIs with generated data, and the ``make demo`` walk-through."""
