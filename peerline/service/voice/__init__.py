"""The voice line: menu, screened forwarding to supporters, voicemail and masked call-backs.

One concern per module, each depending only on those above it in this list:
`models` (tables and the call states stored in them), `settings`, `prompts`, `answers`
(what the person on the line hears next, as plain data), `shared` (what every webhook step
shares), `status` (status callbacks), `ringing`, `whisper`, `menu`, `voicemail`, `placement`
(call-backs queued after commit and placed by a worker), `callbacks` (#call) and `twiml`
(each answer rendered with the Twilio SDK's builders, for the blueprint). Twilio's
status vocabulary lives in `peerline.service.call_states`, shared with routing; the menu's
pure parsing of keys and words in `peerline.flows.menu`.
"""
