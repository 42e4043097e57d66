"""The AI process: inference runs in a separate, spawned process.

TensorFlow and VTK's software OpenGL (Mesa) cannot share a process, and importing
TensorFlow takes seconds; so the viewer (and the CLI) talk to a child process through
:class:`ai.process.client.AIClient`. Images travel in shared memory, small messages
(:mod:`ai.process.protocol`) through a pipe. The parent never imports TensorFlow.
"""
