"""PyQt5 operator and technician screens: the only package that imports Qt."""
