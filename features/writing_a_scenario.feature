@e2e
Feature: Writing a scenario (the README's worked example)
  Two workspaces on the solo tier; a six-prompt run in one of them where one node needs
  three RALPH iterations; each workspace's chain asserted. No Rust was written for it.

  Scenario: two workspaces, a six-prompt run where one node needs three iterations
    Given a rocky stack
    When I provision workspace "alpha" on tier "solo"
    Then workspace "alpha" is ready
    When I provision workspace "beta" on tier "solo"
    Then workspace "beta" is ready
    When I submit the run "runs/six_prompts.yaml" in workspace "alpha"
    Then the run is accepted
    When the run in workspace "alpha" ends
    Then the run status is "succeeded"
    And node 3 of the run needed 3 RALPH iterations and succeeded
    And node 1 of the run needed 1 RALPH iterations and succeeded
    When I tear down workspace "alpha"
    And I tear down workspace "beta"
    Then the HATCH chain of workspace "alpha" is exactly "hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.node.succeeded ×6 → ralph.run.ended → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain of workspace "beta" is exactly "hearth.provisioning_started → hearth.provisioned → hearth.decommission_started → hearth.decommissioned"
    And the HATCH chain counts:
      | kind                        | count |
      | hearth.provisioned          | 2     |
      | ralph.node.*                | 6     |
      | hearth.decommissioned       | 2     |
    And "hearth.failed" never fires
    And the HATCH chain matches the snapshot

  Scenario: a node that never converges fails the run after max_ralph_iters
    Given a rocky stack
    When I provision workspace "gamma" on tier "solo"
    Then workspace "gamma" is ready
    When I submit a run in workspace "gamma" with max_ralph_iters 4 and prompts:
      | prompt             | iterations |
      | warm up            | 1          |
      | chase a moving bug | never      |
      | tidy up            | 2          |
    And the run ends
    Then the run status is "failed"
    And node 2 of the run needed 4 RALPH iterations and failed
    And node 3 of the run needed 2 RALPH iterations and succeeded
    When I tear down workspace "gamma"
    Then the HATCH chain contains in order "ralph.run.started → ralph.node.succeeded → ralph.node.failed → ralph.node.succeeded → ralph.run.ended"
    And "hearth.failed" never fires
    And the HATCH chain matches the snapshot
