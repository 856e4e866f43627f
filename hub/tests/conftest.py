"""The domain tests' personas (course phys101 and its people), shared with the hub tests."""

from courses.tests import conftest as personas

course = personas.course
people = personas.people
