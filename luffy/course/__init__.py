"""The course catalogue: teachers, categories, courses, chapters and sections."""
