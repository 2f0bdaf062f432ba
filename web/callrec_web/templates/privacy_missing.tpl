% # For the accounts responsible for the notice: what the office must still fill in.
% if facts.missing and can('processing.record'):
<div class="warning no-print" role="note" id="controller-missing">
  <p>{{T('missing_warning', source=source, fields=', '.join(facts.missing))}}</p>
</div>
% end
