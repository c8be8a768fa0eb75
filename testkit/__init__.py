"""Test and bench helpers, not part of the product: synthetic photos with real faces pasted in
(`faces`), moving-face videos (`video`), tiny labelled datasets (`datasets`) and a headless
Chromium against a served dashboard (`browser`). Tests and bench scripts both import them;
nothing made here is committed data (faces come from the public-domain astronaut portrait in
docs/assets, or are read from a dataset path, at run time)."""
