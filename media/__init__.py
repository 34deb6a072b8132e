"""aiortc: the server-side forwarding unit for group sessions and headless test participants.
Imports :mod:`rooms`, never :mod:`web`. (Coming next.)"""
