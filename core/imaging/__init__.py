"""Reading images: files into RGB uint8 arrays (`files`), pixel arrays and resizing (`pixels`),
box overlaps (`boxes`). The bottom floor of the pipeline: it imports nothing of the project."""
