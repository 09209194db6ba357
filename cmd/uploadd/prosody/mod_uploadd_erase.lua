-- mod_uploadd_erase: when an account of this host is deleted, ask uploadd
-- (chatbx.eu/privacy/cmd/uploadd) to erase every file the user uploaded.
--
-- Load it on each VirtualHost whose users upload through uploadd:
--
--   modules_enabled = { ..., "uploadd_erase" }
--   uploadd_admin_url = "http://127.0.0.1:5444"   -- uploadd's -admin-listen
--   uploadd_admin_secret = "..."                  -- uploadd's -admin-secret-file
--   uploadd_file_share_host = "upload.example.org" -- the http_file_share component
--   uploadd_file_share_max_age = 30*86400         -- uploadd's -ttl
--
-- In external mode, mod_http_file_share keeps a record of every slot it
-- issued (uploader JID, file name, size, type, time) in its "uploads"
-- archive and never removes it: its daily pruning runs only when it stores
-- the files itself. With uploadd_file_share_host set, this module deletes a
-- deleted account's records at once and, daily, every record older than
-- uploadd_file_share_max_age.
--
-- A failed call is logged (without the JID) and retried with a doubling
-- pause for about an hour; uploadd's erasure is idempotent. Part of
-- chatbx.eu/privacy, under its BSD 2-Clause license.

local http = require "net.http";
local jid_join = require "util.jid".join;

local admin_url = module:get_option_string("uploadd_admin_url", "http://127.0.0.1:5444");
local secret = module:get_option_string("uploadd_admin_secret");
if not secret then
	module:log("error", "uploadd_admin_secret is not set: deleted accounts' uploads will not be erased");
	return;
end

local share_host = module:get_option_string("uploadd_file_share_host");
local share_max_age = module:get_option_number("uploadd_file_share_max_age", 30 * 86400);

-- The slot records of the http_file_share component, or nil.
local function share_records()
	if not share_host then return nil; end
	return module:context(share_host):open_store("uploads", "archive");
end

if share_host then
	module:daily("Remove old upload slot records", function ()
		local ok, err = share_records():delete(nil, { ["end"] = os.time() - share_max_age });
		if not ok then
			module:log("error", "could not remove old upload slot records: %s", tostring(err));
		end
	end);
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
		local user = jid_join(event.username, event.host);
		local records = share_records();
		if records then
			local ok, err = records:delete(nil, { with = user });
			if not ok then
				module:log("error", "could not remove a deleted account's upload slot records: %s", tostring(err));
			end
		end
		erase(user, 1);
	end
end);
