@e2e
Feature: Several workspaces and runs, checked in any order
  Written from features/STEPS.md alone: every step that names a workspace acts on that
  workspace, whatever ran before it, so the checks can come after all the work.

  Scenario: two workspaces with a run each, every check at the end
    Given a rocky stack
    When I provision workspace "north" on tier "solo"
    And I provision workspace "south" on tier "solo"
    And I submit a run of 2 prompts in workspace "north"
    And I submit a run in workspace "south" with prompts:
      | prompt         | iterations |
      | chart the bay  | 1          |
      | sound the reef | 3          |
      | mark the shoal | 2          |
    When the run in workspace "south" ends
    And the run in workspace "north" ends
    Then workspace "south" is ready
    And workspace "north" is ready
    And the run in workspace "south" is accepted
    And the run in workspace "north" is accepted
    And node 2 of the run in workspace "south" needed 3 RALPH iterations and succeeded
    And the run status in workspace "north" is "succeeded"
    And node 1 of the run in workspace "north" needed 1 RALPH iterations and succeeded
    And the run status in workspace "south" is "succeeded"
    When I tear down workspace "south"
    And I tear down workspace "north"
    Then hearth reports workspace "north" as "tier_torn_down"
    And hearth reports workspace "south" as "tier_torn_down"
    And the HATCH chain of workspace "south" is exactly "hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.node.succeeded ×3 → ralph.run.ended → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain of workspace "north" is exactly "hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.node.succeeded ×2 → ralph.run.ended → hearth.decommission_started → hearth.decommissioned"
    And the HATCH log verifies
    And nothing of workspace "north" remains
    And nothing of workspace "south" remains

  Scenario: "the run" is the run the prose last named
    Given a rocky stack
    When I provision workspace "one" on tier "solo"
    And I provision workspace "two" on tier "solo"
    And I submit a run of 2 prompts in workspace "one"
    And I submit a run in workspace "two" with max_ralph_iters 2 and prompts:
      | prompt           | iterations |
      | chase the shadow | never      |
    When the run in workspace "one" ends
    Then the run status is "succeeded"
    And node 2 of the run needed 1 RALPH iterations and succeeded
    When the run in workspace "two" ends
    Then the run status is "failed"
    And node 1 of the run needed 2 RALPH iterations and failed
    When I tear down workspace "one"
    And I tear down workspace "two"
    Then nothing of workspace "one" remains
    And nothing of workspace "two" remains
