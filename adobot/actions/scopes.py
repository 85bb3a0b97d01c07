"""The PAT scopes actions need, in the words of the token page (what PERMISSION_DENIED names).

Each is the least scope Microsoft's spec names for the route (its ``security`` section); the
scope ids are in brackets for readers of the specs and of the sandbox's route records.
"""
from __future__ import annotations

PROJECT_READ = "Project and Team (Read)"          # vso.project (vso.profile also reads projects)
CODE_READ = "Code (Read)"                         # vso.code
CODE_WRITE = "Code (Read & write)"                # vso.code_write
CODE_MANAGE = "Code (Read, write, & manage)"      # vso.code_manage
BUILD_READ = "Build (Read)"                       # vso.build
BUILD_EXECUTE = "Build (Read & execute)"          # vso.build_execute
WORK_READ = "Work Items (Read)"                   # vso.work
WORK_WRITE = "Work Items (Read & write)"          # vso.work_write
WIKI_READ = "Wiki (Read)"                         # vso.wiki
IDENTITY_READ = "Identity (Read)"                 # vso.identity
