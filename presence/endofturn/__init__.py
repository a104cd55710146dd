"""End-of-turn prediction: at each VAD window of a pause, how likely is it that the user is done?

``text`` scores the words heard so far (does the transcript end a complete thought?),
``predictor`` fuses that with the sound (prosody cue, the VAD's trajectory) and the silence so
far into one calibrated probability; ``train`` rebuilds both weight files from allowed material
(Switchboard text, eSpeak NG speech). All pure: time and transcripts are arguments.
"""
