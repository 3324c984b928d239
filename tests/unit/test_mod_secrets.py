"""kumo.secrets.load: every KeySource form and kumod's error wording."""

from __future__ import annotations

from pathlib import Path

from egress_resolver.runtime.lua_host import PolicyHost

POLICY = """
local kumo = require 'kumo'
kumo.on('make-secret', function(a, b) return 'secret-' .. a .. '-' .. tostring(b) end)
kumo.on('not-a-string', function() return 42 end)
kumo.on('validate_config', function()
  local function show(...) print(tostring(select(1, ...)), tostring(select(2, ...))) end
  show(pcall(kumo.secrets.load, 'relative.key'))
  show(pcall(kumo.secrets.load, { key_data = '\\0\\1' }))
  show(pcall(kumo.secrets.load, { event_name = 'make-secret', event_args = { 'x', 7 } }))
  show(pcall(kumo.secrets.load, { event_name = 'not-a-string', event_args = {} }))
  show(pcall(kumo.secrets.load, { event_name = 'nobody', event_args = {} }))
  show(pcall(kumo.secrets.load, '/no/such/file.key'))
  show(pcall(kumo.secrets.load, { key_data = 'x', extra = 1 }))
end)
"""


def test_every_keysource_form(tmp_path: Path) -> None:
    (tmp_path / "relative.key").write_text("from-a-file")
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY)
    output = PolicyHost(policy).validate_config().output
    assert output[0] == "true\tfrom-a-file"
    assert output[1] == "true\t\x00\x01"
    assert output[2] == "true\tsecret-x-7"
    assert output[3].startswith("false\t")
    assert "KeySource event 'not-a-string' returned a number; expected a string" in output[3]
    assert output[4] == ("false\tkumo.secrets.load: no handler is registered for event 'nobody'")
    assert output[5] == (
        "false\tKeySource failed to load data from file `/no/such/file.key`: "
        "No such file or directory (os error 2)"
    )
    assert output[6].startswith("false\tkumo.secrets.load: expected a KeySource")
