Feature: The step vocabulary is strict and helpful
  A step whose text drifted never passes silently: the run fails before anything starts,
  naming the closest defined steps and printing a snippet to start from.

  Scenario: a misspelt step names the intended step
    When the features in "steps/fixtures/misspelt" are checked
    Then the check reports 'undefined step `When I provison workspace "test" on tier "solo"`'
    And the check reports 'When I provision workspace {string} on tier {string}   (steps/workspaces.rs:'
    And the check reports '#[when(expr = "I provison workspace {string} on tier {string}")]'

  Scenario: an ambiguous step names both definitions
    When the features in "features/play.feature" are checked against a vocabulary defining "the run ends" twice
    Then the check reports 'ambiguous step `When the run ends` matches 2 definitions'
    And the check reports 'steps/elsewhere.rs:1'
    And the check reports '(steps/runs.rs:'

  Scenario: the checked-in step reference is current
    Then "features/STEPS.md" is the current step reference
