"""The API of the operator: pydantic models of the four kinds in group rental.purifier.io, v1alpha1.

One module per kind (`purifier`, `rental`, `payment`, `delivery`), the shared envelope and naming in
`meta`, the condition shape and vocabulary in `conditions`, amounts of money (each currency's minor
units, and how an amount reads for people) in `money`. The models are the single source of truth
for the CustomResourceDefinitions: `crdgen` writes crds/ from them. Import the modules and use them
qualified (`rental.Rental.from_body(body)`); nothing is re-exported here.
"""
