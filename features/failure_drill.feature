@drill
Feature: The failure drill
  Each of the seed's five failure modes, injected for real into the real stack. Each must
  show as a precise gap in the asserted chain, with the evidence that explains it: no log
  reading needed.

  Scenario: hearth is not on the search path
    Given hearth is not on the search path
    When the stack starts
    Then the stack fails to start with an error naming "no `hearth` binary in any of"
    And the stack fails to start with an error naming "empty-path"
    And the stack fails to start with an error naming "cargo build --bin hearth"
    And the HATCH log has 0 records

  @docker
  Scenario: the Docker engine is not running
    Given the Docker engine does not answer
    And a rocky stack
    When I provision workspace "drill" on tier "solo"
    Then the console answers 502 with code "provisioning_failed"
    And hearth reports workspace "drill" as "failed"
    When I submit a run of 4 prompts in workspace "drill"
    Then the console answers 409 with code "workspace_not_ready"
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.failed"
    And against the play chain the first gap is "hearth.provisioned" missing in act "provision"
    And the gap report's evidence says "hearth status drill: failed"
    And the gap report's evidence says "no-engine.sock"
    And the HATCH chain matches the snapshot

  Scenario: the VAULT bearer drifts
    Given the worker reads a different VAULT secret than the console
    And a rocky stack
    When I provision workspace "drill" on tier "solo"
    Then workspace "drill" is ready
    When I submit a run of 4 prompts in workspace "drill"
    Then the console answers 502 with code "worker_unauthorized"
    When I tear down workspace "drill"
    Then the console answers 200
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → hearth.decommission_started → hearth.decommissioned"
    And against the play chain the first gap is "ralph.run.started" missing in act "submit run"
    And the gap report's evidence says "console→worker returned 401 (bearer rejected: signature mismatch, key id v1)"
    And the HATCH chain matches the snapshot

  Scenario Outline: the KAHN schema drifts: <drift>
    Given the worker emits KAHN frames with drift "<drift>"
    And a rocky stack
    When I provision workspace "drill" on tier "solo"
    Then workspace "drill" is ready
    When I submit a run of 4 prompts in workspace "drill"
    Then the run is accepted
    When the run ends
    Then the run status is "failed"
    When I tear down workspace "drill"
    Then the console answers 200
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.run.ended → hearth.decommission_started → hearth.decommissioned"
    And against the play chain the first gap is "ralph.node.*" missing in act "stream nodes"
    And the gap report's evidence says '<evidence>'
    And the HATCH chain matches the snapshot

    Examples:
      | drift                | evidence                                      |
      | schema=kahn/2        | first: schema "kahn/2" is not kahn/1          |
      | rename=node_id:nodeId | first: unknown field `nodeId` in NodeTransition |

  Scenario: teardown passes its deadline
    Given service "lore" of tier "solo" ignores SIGTERM
    And hearth's teardown deadline is "1s"
    And a rocky stack
    When I provision workspace "drill" on tier "solo"
    Then workspace "drill" is ready
    When I submit a run of 4 prompts in workspace "drill"
    And the run ends
    Then the run status is "succeeded"
    When I tear down workspace "drill"
    Then the console answers 504 with code "teardown_timeout"
    And hearth reports workspace "drill" as "tearing_down"
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.node.* ×4 → ralph.run.ended → hearth.decommission_started"
    And against the play chain the first gap is "hearth.decommissioned" missing in act "teardown"
    And the gap report's evidence says "hearth status drill: tearing_down (teardown deadline 1s passed"
    And the gap report's evidence says "504 teardown_timeout"
    And the HATCH chain matches the snapshot
    When the stack stops
    Then nothing of workspace "drill" remains

  @docker
  Scenario: a provisioning that fails halfway removes what it made
    Given service "lore" of tier "solo" runs image "rocky-e2e/no-such-image:1"
    And a rocky stack
    When I provision workspace "half" on tier "solo"
    Then the console answers 502 with code "provisioning_failed"
    And nothing of workspace "half" remains
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.failed"
    And the gap report's evidence says "rocky-e2e/no-such-image:1"
