"""The data contracts in code: the model bundle's files and manifest (`bundle.py`), the names in an
output folder (`output_names.py`), the scored and error Parquet schemas (`output.py`) and the run
summary (`summary.py`).

Nothing outside this package defines a bundle file name, an output file name, an output column
name or an error stage.
"""
