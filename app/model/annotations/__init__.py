"""Point annotations synced to the labels (DVID's ``annotation`` datatype:
synapses, bookmarks) and their counts per body (DVID's ``labelsz``)."""
