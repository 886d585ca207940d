"""The XML matcher must tell equal documents from different ones."""

from nova import test
from nova.tests.unit import matchers


class XMLMatchesTest(test.TestCase):

    def _diff(self, expected, actual):
        mismatch = matchers.XMLMatches(expected).match(actual)
        return None if mismatch is None else mismatch.describe()

    def test_ignores_attribute_order_whitespace_comments(self):
        self.assertIsNone(self._diff(
            '<a x="1" y="2"><b>t</b></a>',
            '<a y="2" x="1">\n  <!-- c -->\n  <b> t </b>\n</a>'))

    def test_reports_attribute_path(self):
        self.assertIn('/a/b/@x: expected \'1\', got \'2\'',
                      self._diff('<a><b x="1"/></a>', '<a><b x="2"/></a>'))

    def test_reports_missing_attribute(self):
        self.assertIn("/a/@y: expected '2', got None",
                      self._diff('<a y="2"/>', '<a/>'))

    def test_reports_text(self):
        self.assertIn('/a/text()', self._diff('<a>1</a>', '<a>2</a>'))

    def test_reports_missing_and_extra_children(self):
        self.assertIn('missing child <c>',
                      self._diff('<a><b/><c/></a>', '<a><b/></a>'))
        self.assertIn('unexpected child <c>',
                      self._diff('<a><b/></a>', '<a><b/><c/></a>'))

    def test_element_order_matters(self):
        self.assertIn('expected element <b>',
                      self._diff('<a><b/><c/></a>', '<a><c/><b/></a>'))

    def test_indexes_repeated_siblings(self):
        self.assertIn('/a/b[2]/@x',
                      self._diff('<a><b x="1"/><b x="2"/></a>',
                                 '<a><b x="1"/><b x="3"/></a>'))

    def test_assert_xml_equal_fails(self):
        self.assertRaises(self.failureException, self.assertXmlEqual,
                          '<a x="1"/>', '<a x="2"/>')
