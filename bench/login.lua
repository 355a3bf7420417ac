-- wrk script of the /v1/login benchmark (bench/run.py): POST /v1/login
-- with each user of the file given after "--" in turn ("name password"
-- a line); each wrk thread starts at its own place in the list.
local users = {}
local i = 0
local counter = 0

function setup(thread)
	thread:set("start", counter)
	counter = counter + 1
end

function init(args)
	for line in io.lines(args[1]) do
		local name, pw = line:match("^(%S+)%s+(%S+)$")
		if name then
			users[#users + 1] = string.format(
			    '{"username":"%s","password":"%s"}', name, pw)
		end
	end
	i = (start or 0) * 7
end

function request()
	i = i % #users + 1
	return wrk.format("POST", "/v1/login",
	    {["Content-Type"] = "application/json"}, users[i])
end
