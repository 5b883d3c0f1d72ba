@chaos
Feature: The chaos drill
  Races, hang-ups and restarts against the real stack (CONTRACT §9). Each scenario asserts the
  exact HATCH chain, the final status and that nothing of the workspace remains.

  Scenario: a teardown during provisioning is ordered after it
    Given service "lore" of tier "solo" becomes healthy after 500 ms
    And a rocky stack
    When I start provisioning workspace "x" on tier "solo" in the background
    And hearth reports workspace "x" as "provisioning" in time
    And I tear down workspace "x" in the background
    And the background requests are answered
    Then the background answers were "201, 200"
    Then hearth reports workspace "x" as "tier_torn_down"
    And workspace "x" settles as "tier_torn_down"
    And nothing of workspace "x" remains
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain matches the snapshot

  Scenario: two teardowns at once join one
    Given a rocky stack
    When I provision workspace "x" on tier "solo"
    Then workspace "x" is ready
    When I tear down workspace "x" 2 times at once
    Then the last 2 answers were 200
    And hearth reports workspace "x" as "tier_torn_down"
    And nothing of workspace "x" remains
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain matches the snapshot

  Scenario: the caller hangs up mid-provision
    Given service "lore" of tier "solo" becomes healthy after 500 ms
    And a rocky stack
    When I provision workspace "x" on tier "solo" and hang up once hearth is provisioning it
    Then workspace "x" settles as "ready"
    And hearth reports workspace "x" as "ready"
    When I tear down workspace "x"
    Then the console answers 200
    And hearth reports workspace "x" as "tier_torn_down"
    And nothing of workspace "x" remains
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain matches the snapshot

  Scenario: a teardown with an active run cancels it first
    Given a rocky stack
    When I provision workspace "x" on tier "solo"
    Then workspace "x" is ready
    When I submit a run in workspace "x" with prompts:
      | prompt          | iterations |
      | write the spec  | 1          |
      | wait for a stop | hold       |
    Then the run is accepted
    When the console reports node 2 of the run as "running" in time
    And I tear down workspace "x"
    Then the console answers 200
    When the run ends
    Then the run status is "cancelled"
    And hearth reports workspace "x" as "tier_torn_down"
    And nothing of workspace "x" remains
    And the HATCH chain contains in order "ralph.run.started → ralph.run.ended → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain matches the snapshot

  Scenario: hearth is killed and restarted between provision and teardown
    Given a rocky stack
    When I provision workspace "x" on tier "solo"
    Then workspace "x" is ready
    When hearth is killed with SIGKILL
    And hearth is restarted
    Then hearth reports workspace "x" as "ready"
    When I tear down workspace "x"
    Then the console answers 200
    And hearth reports workspace "x" as "tier_torn_down"
    And workspace "x" settles as "tier_torn_down"
    And nothing of workspace "x" remains
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain matches the snapshot

  Scenario: the worker is killed and restarted mid-run
    Given a rocky stack
    When I provision workspace "x" on tier "solo"
    Then workspace "x" is ready
    When I submit a run in workspace "x" with prompts:
      | prompt          | iterations |
      | write the spec  | 1          |
      | wait for a stop | hold       |
    Then the run is accepted
    When the console reports node 2 of the run as "running" in time
    And the worker is killed with SIGKILL
    And the worker is restarted
    And the run ends
    Then the run status is "failed"
    And the run ended because "the worker no longer knows the run (404): it was restarted, or evicted the run"
    When I tear down workspace "x"
    Then the console answers 200
    And hearth reports workspace "x" as "tier_torn_down"
    And nothing of workspace "x" remains
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.node.succeeded → ralph.run.ended → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain matches the snapshot

  Scenario: a teardown ends a run whose worker is gone
    Given a rocky stack
    When I provision workspace "x" on tier "solo"
    Then workspace "x" is ready
    When I submit a run in workspace "x" with prompts:
      | prompt          | iterations |
      | write the spec  | 1          |
      | wait for a stop | hold       |
    Then the run is accepted
    When the console reports node 2 of the run as "running" in time
    And the worker is killed with SIGKILL
    And I tear down workspace "x"
    Then the console answers 200
    When the run ends
    Then the run status is "cancelled"
    And the run ended because "workspace x torn down; the cancel failed: the worker could not be reached"
    And hearth reports workspace "x" as "tier_torn_down"
    And nothing of workspace "x" remains
    And the HATCH chain is exactly "hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.node.succeeded → ralph.run.ended → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain matches the snapshot
