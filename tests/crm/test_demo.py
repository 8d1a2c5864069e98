from crm import demo
from crm.models import Contact, Segment
from crm.segments import segment_queryset


def test_seed_is_fast_deterministic_and_idempotent(workspace, django_assert_max_num_queries):
    with django_assert_max_num_queries(250):
        demo.seed(workspace, users={})
    count = Contact.objects.for_workspace(workspace).count()
    assert count >= 2900
    demo.seed(workspace, users={})
    assert Contact.objects.for_workspace(workspace).count() == count
    for segment in Segment.objects.for_workspace(workspace):
        assert segment_queryset(segment.rules, workspace).count() > 0
