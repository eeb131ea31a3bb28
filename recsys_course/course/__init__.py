"""The course's own machinery, not something a student imports in a lesson: the ``recsys-course`` command
(:mod:`~recsys_course.course.cli`), running notebooks with papermill (:mod:`~recsys_course.course.runner`) and
building the leaderboard from their recorded numbers (:mod:`~recsys_course.course.leaderboard`)."""
