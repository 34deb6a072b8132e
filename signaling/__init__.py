"""The socket.io protocol: validates each event, calls :mod:`rooms`, relays SDP/ICE between
endpoints and pushes room updates. Imports :mod:`rooms`, never :mod:`web`. (Coming next.)"""
