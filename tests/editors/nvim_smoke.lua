-- Headless Neovim (0.7+) smoke test for `fieldsafe lsp`.
--
-- Run: nvim --headless -u NONE -i NONE -n -c "luafile tests/editors/nvim_smoke.lua"
-- Environment:
--   FIELDSAFE_PYTHON   interpreter with fieldsafe installed
--   FIELDSAFE_PROJECT  a (copied) Particle project whose pin disagrees with its target device
--   FIELDSAFE_OUT      where to write the JSON result
--   PARTICLE_API_URL / PARTICLE_ACCESS_TOKEN point the server at the emulator.
--
-- Uses the 0.7 API on purpose (vim.lsp.start_client + buf_attach_client; vim.lsp.start is 0.8+),
-- so it runs on Debian 12's neovim. Neovim <= 0.9 does not send Diagnostic.data back, so the code
-- action exercises the server's recovery from code + range.

local python = os.getenv("FIELDSAFE_PYTHON") or "python3"
local root = assert(os.getenv("FIELDSAFE_PROJECT"), "FIELDSAFE_PROJECT is not set")
local out = assert(os.getenv("FIELDSAFE_OUT"), "FIELDSAFE_OUT is not set")

local result = { ok = false, stage = "start", diagnostics = {}, actions = {}, progress = 0, statuses = {} }

local function finish()
  local f = io.open(out, "w")
  f:write(vim.fn.json_encode(result))
  f:close()
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  local client_id = vim.lsp.start_client({
    name = "fieldsafe",
    cmd = { python, "-m", "fieldsafe", "lsp" },
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = "project" } },
    settings = { fieldsafe = { compileOnSave = false } },
    handlers = {
      ["fieldsafe/status"] = function(_, params)
        table.insert(result.statuses, params.state)
      end,
      ["$/progress"] = function()
        result.progress = result.progress + 1
      end,
    },
  })
  assert(client_id, "vim.lsp.start_client failed")

  result.stage = "open"
  vim.cmd("edit " .. vim.fn.fnameescape(root .. "/.vscode/settings.json"))
  local bufnr = vim.api.nvim_get_current_buf()
  vim.lsp.buf_attach_client(bufnr, client_id)

  result.stage = "diagnostics"
  local got = vim.wait(20000, function()
    return #vim.diagnostic.get(bufnr) > 0
  end, 50)
  assert(got, "no diagnostics on settings.json within 20 s")
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(result.diagnostics, { lnum = d.lnum, col = d.col, end_col = d.end_col, message = d.message,
      code = (d.user_data and d.user_data.lsp and d.user_data.lsp.code) or d.code })
  end

  result.stage = "codeAction"
  local first = vim.diagnostic.get(bufnr)[1]
  local lsp_diags = vim.lsp.diagnostic.get_line_diagnostics(bufnr, first.lnum)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = { line = first.lnum, character = first.col },
              ["end"] = { line = first.end_lnum or first.lnum, character = first.end_col or first.col } },
    context = { diagnostics = lsp_diags },
  }
  local responses = vim.lsp.buf_request_sync(bufnr, "textDocument/codeAction", params, 10000)
  assert(responses, "no codeAction response")
  for _, response in pairs(responses) do
    for _, action in ipairs(response.result or {}) do
      table.insert(result.actions, { title = action.title, edit = action.edit, command = action.command })
    end
  end

  result.stage = "applied"
  for _, action in ipairs(result.actions) do
    if action.edit then
      vim.lsp.util.apply_workspace_edit(action.edit, "utf-16")
      break
    end
  end
  result.buffer = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")

  result.stage = "done"
  result.ok = true
  vim.lsp.stop_client(client_id)
end)

if not ok then
  result.error = tostring(err)
end
finish()
