-- Argo CD health check for RetryPolicy and DeadLetterQueue (rocketmq-retry.io). Argo CD runs it with Lua's base
-- and table libraries only, so it uses no string functions. tests/unit/test_gitops_health.py runs it on objects the
-- e2e tests recorded from a real operator.
--
--   Healthy      Ready=True for the current generation (on a DeadLetterQueue also BacklogHigh not True)
--   Progressing  no status yet, a generation the operator has not observed yet, deletion under way,
--                Reconciling=True (the operator retries on its own), or Ready=Unknown
--   Degraded     Stalled=True or Ready=False for a spec problem (InvalidSpec, Conflict): needs a change in Git;
--                Ready=False without Reconciling; BacklogHigh=True: dead letters above the alertThreshold
--   Suspended    the operator was told to keep off: ReconciliationPaused (annotation
--                rocketmq-retry.io/pause-reconciliation) or Unmanaged (rocketmq-retry.io/managed: "false")

local TERMINAL = {InvalidSpec = true, Conflict = true}
local HANDS_OFF = {ReconciliationPaused = true, Unmanaged = true}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, found in ipairs(obj.status.conditions) do
    if found.type == kind then
      return found
    end
  end
  return nil
end

local function is_true(kind)
  local found = condition(kind)
  return found ~= nil and found.status == "True"
end

local function verdict(status, found)
  return {status = status, message = (found.reason or "") .. ": " .. (found.message or "")}
end

if obj.metadata.deletionTimestamp ~= nil then
  return {status = "Progressing", message = "Being deleted: the operator applies the deletionPolicy"}
end
local ready = condition("Ready")
if ready == nil then
  return {status = "Progressing", message = "Waiting for the operator's first status"}
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration or ready.observedGeneration
if generation ~= nil and observed ~= generation then
  return {status = "Progressing",
          message = "Waiting for the operator to observe generation " .. generation .. " (status is of " ..
                    tostring(observed) .. ")"}
end
if is_true("Stalled") then
  return verdict("Degraded", condition("Stalled"))
end
if ready.status == "False" and TERMINAL[ready.reason] then
  return verdict("Degraded", ready)
end
if HANDS_OFF[ready.reason] then
  return verdict("Suspended", ready)
end
if is_true("Reconciling") then
  return verdict("Progressing", condition("Reconciling"))
end
if ready.status == "True" then
  if is_true("BacklogHigh") then
    return verdict("Degraded", condition("BacklogHigh"))
  end
  return verdict("Healthy", ready)
end
if ready.status == "False" then
  return verdict("Degraded", ready)
end
return verdict("Progressing", ready)
