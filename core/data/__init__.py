"""Labelled face datasets (`datasets`: loaders, split) and the damage real photos do to faces
(`corruptions`, for training augmentation and the robustness bench)."""
