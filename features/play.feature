@e2e
Feature: The six-act play
  The required CI job: provision a workspace from nothing, run a four-prompt RALPH job in
  it, tear it down, and fail unless the HATCH log shows every act in the right order.

  Scenario: provision, run four prompts, tear down
    Given a rocky stack
    When I provision workspace "test" on tier "solo"
    Then workspace "test" is ready
    When I submit a run of 4 prompts in workspace "test"
    Then the run is accepted
    When the run ends
    Then the run status is "succeeded"
    When I tear down workspace "test"
    Then the console answers 200
    And hearth reports workspace "test" as "tier_torn_down"
    And nothing of workspace "test" remains
    And the HATCH chain is exactly:
      | kind                        | count |
      | hearth.provisioning_started | 1     |
      | hearth.provisioned          | 1     |
      | ralph.run.started           | 1     |
      | ralph.node.*                | 4     |
      | ralph.run.ended             | 1     |
      | hearth.decommission_started | 1     |
      | hearth.decommissioned       | 1     |
    And the HATCH chain matches the snapshot
    And the HATCH log verifies
