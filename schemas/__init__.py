"""The data contracts in code: the model bundle's manifest and the scored-output Parquet schemas.

Nothing outside this package defines a bundle file name or an output column name.
"""
