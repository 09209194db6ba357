-- mod_uploadd_erase: when an account of this host is deleted, ask uploadd
-- (chatbx.eu/privacy/cmd/uploadd) to erase every file the user uploaded.
--
-- Load it on each VirtualHost whose users upload through uploadd:
--
--   modules_enabled = { ..., "uploadd_erase" }
--   uploadd_admin_url = "http://127.0.0.1:5444"   -- uploadd's -admin-listen
--   uploadd_admin_secret = "..."                  -- uploadd's -admin-secret-file
--
-- A failed call is logged (without the JID) and retried with a doubling
-- pause for about an hour; uploadd's erasure is idempotent. Part of
-- chatbx.eu/privacy; MIT licensed like the rest of it.

local http = require "net.http";
local jid_join = require "util.jid".join;

local admin_url = module:get_option_string("uploadd_admin_url", "http://127.0.0.1:5444");
local secret = module:get_option_string("uploadd_admin_secret");
if not secret then
	module:log("error", "uploadd_admin_secret is not set: deleted accounts' uploads will not be erased");
	return;
end

local function erase(user, attempt)
	http.request(admin_url .. "/users/" .. http.urlencode(user), {
		method = "DELETE";
		headers = { Authorization = "Bearer " .. secret };
	}, function (_, code)
		if code == 204 then
			module:log("debug", "uploadd erased the uploads of a deleted account");
			return;
		end
		module:log("warn", "uploadd did not erase the uploads of a deleted account (status %s, attempt %d)", tostring(code), attempt);
		if attempt < 12 then
			module:add_timer(2 ^ attempt, function () erase(user, attempt + 1); end);
		else
			module:log("error", "giving up erasing the uploads of a deleted account: call DELETE /users/<jid> by hand");
		end
	end);
end

module:hook_global("user-deleted", function (event)
	if event.host == module.host then
		erase(jid_join(event.username, event.host), 1);
	end
end);
